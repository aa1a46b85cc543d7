// In-app navigation: pages change the URL through here, and the router (app.js) draws the page for it.
// Its own module, so that pages import it without importing the router that imports them.

let draw = () => {};

/** The router's draw function; app.js gives it once, before the first page is drawn. */
export function setDraw(fn) {
  draw = fn;
}

/** In-app links change the URL with pushState; back, forward and reload draw the same page again. */
export function navigate(url) {
  history.pushState(null, "", url);
  draw();
  window.scrollTo(0, 0);
}
