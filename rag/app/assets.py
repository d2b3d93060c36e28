"""The page's styles and its one piece of JavaScript (citation links), passed to Gradio once."""

# Styles live with the markup they style; the app passes them to Gradio once.
CSS = """
.rag-answer { font-size: 1.05rem; line-height: 1.6; }
.rag-short { margin: 0 0 .6rem; padding: .4rem .7rem; border-left: 4px solid #2563eb; background: #eff6ff; color: #111; }
.rag-short strong, .rag-answer strong { color: #1d4ed8; }
.rag-abstain { margin: 0 0 .6rem; padding: .6rem .8rem; border: 2px dashed #b45309; background: #fffbeb; color: #78350f; font-weight: 600; }
.rag-meta { color: #6b7280; font-size: .85rem; margin: .3rem 0 .8rem; }
a.rag-cite { text-decoration: none; font-weight: 600; color: #1d4ed8; cursor: pointer; padding: 0 1px; }
.rag-card { border: 1px solid #d1d5db; border-radius: 6px; padding: .5rem .7rem; margin: .5rem 0; color: inherit; }
.rag-card.rag-active { border-color: #2563eb; box-shadow: 0 0 0 2px #93c5fd; }
.rag-card h4 { margin: 0 0 .3rem; font-size: .95rem; }
.rag-text { white-space: pre-wrap; line-height: 1.5; }
.rag-card mark, .rag-article mark, .rag-verdict mark { background: #fde047; color: #111; padding: 0 1px; }
.rag-article { margin-top: .4rem; }
.rag-article .rag-text { max-height: 22rem; overflow-y: auto; border-top: 1px solid #e5e7eb; padding-top: .4rem; }
.rag-score { color: #6b7280; font-size: .85rem; font-weight: normal; }
.rag-verdict { border-left: 6px solid #9ca3af; padding: .4rem .7rem; margin: .5rem 0; background: #f9fafb; color: #111; }
.rag-verdict.supported { border-color: #16a34a; background: #f0fdf4; }
.rag-verdict.partially_supported { border-color: #d97706; background: #fffbeb; }
.rag-verdict.unsupported { border-color: #dc2626; background: #fef2f2; }
.rag-badge { display: inline-block; font-size: .8rem; font-weight: 700; padding: 0 .4rem; border-radius: 4px; color: #fff; background: #6b7280; }
.supported .rag-badge { background: #16a34a; }
.partially_supported .rag-badge { background: #d97706; }
.unsupported .rag-badge { background: #dc2626; }
.rag-error { color: #b91c1c; font-weight: 600; }
.rag-removed del, .rag-sentences del { color: #b91c1c; }
.rag-ok { color: #15803d; font-weight: 600; }
"""

# Runs once per HTML component (Gradio's js_on_load, with `element` bound to it). Event delegation keeps
# it working when the component's content is replaced. Without JavaScript the [n] links still jump to
# their cards and <details> still opens.
CITATION_JS = """
element.addEventListener('click', (event) => {
  const link = event.target.closest('a.rag-cite');
  if (link) {
    event.preventDefault();
    const card = element.querySelector('#' + CSS.escape(link.dataset.card));
    if (!card) return;
    element.querySelectorAll('.rag-card.rag-active').forEach((c) => c.classList.remove('rag-active'));
    card.classList.add('rag-active');
    card.scrollIntoView({block: 'center'});
    return;
  }
  const summary = event.target.closest('details.rag-article > summary');
  if (summary) {
    const details = summary.parentElement;
    setTimeout(() => {
      const mark = details.querySelector('mark');
      if (details.open && mark) mark.scrollIntoView({block: 'center'});
    }, 0);
  }
});
"""
