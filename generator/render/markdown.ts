// A publisher's README as HTML safe to put in a page: markdown-it renders it (raw HTML included,
// as READMEs use it), then sanitize-html keeps only what Markdown itself produces, with links to
// http, https and mailto and images from http and https. Scripts, event handlers, styles, frames
// and forms do not survive. Pure and deterministic.
import MarkdownIt from 'markdown-it';
import sanitizeHtml from 'sanitize-html';

const markdown = new MarkdownIt({ html: true, linkify: false, typographer: false });
// sanitize-html decides which links survive; a refused one then keeps its text, not its Markdown source.
markdown.validateLink = () => true;

const ALIGNMENTS = ['align-left', 'align-center', 'align-right'];

const SANITIZE: sanitizeHtml.IOptions = {
  allowedTags: ['h2', 'h3', 'h4', 'h5', 'h6', 'p', 'br', 'hr', 'blockquote', 'pre', 'code', 'kbd', 'em', 'strong', 'del', 's', 'sup', 'sub', 'ul', 'ol', 'li', 'dl', 'dt', 'dd', 'a', 'img', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'details', 'summary'],
  allowedAttributes: { a: ['href', 'title', 'rel'], img: ['src', 'alt', 'title', 'width', 'height'], ol: ['start'], th: ['class'], td: ['class'], code: ['class'] },
  allowedClasses: { th: ALIGNMENTS, td: ALIGNMENTS, code: ['language-*'] },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesByTag: { img: ['http', 'https'] },
  allowProtocolRelative: false,
  disallowedTagsMode: 'discard',
  // A relative image would load from the mirror itself: only absolute http(s) images are kept.
  exclusiveFilter: (frame) => frame.tag === 'img' && !/^https?:\/\//i.test(frame.attribs.src ?? ''),
  transformTags: {
    // The page's own `<h1>` is the agent's name: the README's headings go one level down.
    h1: 'h2',
    h2: 'h3',
    h3: 'h4',
    h4: 'h5',
    h5: 'h6',
    a: sanitizeHtml.simpleTransform('a', { rel: 'nofollow noopener noreferrer' }),
    th: alignmentClass,
    td: alignmentClass,
  },
};

export function renderReadme(source: string): string {
  return sanitizeHtml(markdown.render(source), SANITIZE);
}

/** markdown-it aligns table cells with a `style`; styles are dropped, so the alignment becomes a class. */
function alignmentClass(tagName: string, attribs: sanitizeHtml.Attributes): sanitizeHtml.Tag {
  const align = /^text-align:(left|center|right)$/.exec(attribs.style ?? '');
  return { tagName, attribs: align ? { class: `align-${align[1]}` } : {} };
}
