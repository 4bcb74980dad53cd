if (!window.__acNav) {
  window.__acNav = true;
  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[href^="#src-"]');
    if (!a) return;
    e.preventDefault(); e.stopPropagation();
    const el = document.getElementById(a.getAttribute('href').slice(1));
    if (!el) return;
    const turn = el.closest('details.ac-turn'); if (turn) turn.open = true;
    el.open = true;
    el.scrollIntoView({behavior: 'smooth', block: 'nearest'});
    el.classList.remove('ac-flash'); void el.offsetWidth; el.classList.add('ac-flash');
  }, true);
}
element.addEventListener('click', (e) => {
  const more = e.target.closest && e.target.closest('button.ac-more');
  if (more) {
    e.preventDefault();
    const card = more.closest('.ac-src');
    const full = card.querySelector('.ac-full'), short = card.querySelector('.ac-short');
    const show = full.hidden;
    full.hidden = !show; short.hidden = show;
    more.textContent = show ? 'Show less' : more.dataset.more;
    return;
  }
  const b = e.target.closest && e.target.closest('button.ac-wrong');
  if (!b) return;
  e.preventDefault();
  b.disabled = true; b.textContent = '⚑ Reported';
  trigger('wrong_source', {turn: Number(b.dataset.turn), n: Number(b.dataset.n)});
});
