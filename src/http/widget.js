/* lookbook widget: a strip of look-alikes, bought-together products or a shopper's feed on a
 * shop's page, from `lookbook http`. Add, where the strip should appear:
 *
 *   <div id="looks-like-this"></div>
 *   <script async src="https://RECO.HOST/widget.js" data-key="READ_KEY" data-product="SKU-OR-ID"
 *           data-kind="similar" data-k="6" data-target="looks-like-this"
 *           data-title="Looks like this"></script>
 *
 * data-kind: similar (default) | together | feed (with data-user) | popular.
 * Text from the catalogue is set as text, never as HTML; links and photos must be http(s).
 * The server must list the page's origin with --cors-origin. See docs/http.md.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var d = script.dataset;
  var base = new URL(script.src, document.baseURI).origin;
  var target = document.getElementById(d.target || "lookbook");
  if (!target) {
    console.warn("lookbook: no element with id " + (d.target || "lookbook"));
    return;
  }
  var kind = d.kind || "similar";
  var k = Math.max(1, Math.min(parseInt(d.k || "6", 10) || 6, 24));
  var path;
  if (kind === "similar" || kind === "together") {
    path = "/v1/products/" + encodeURIComponent(d.product || "") + "/" + kind;
  } else if (kind === "feed") {
    path = "/v1/users/" + encodeURIComponent(d.user || "") + "/feed";
  } else {
    path = "/v1/popular";
  }

  function safeUrl(u) {
    if (typeof u !== "string" || !u.trim()) return null;
    try {
      var url = new URL(u, document.baseURI);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function el(tag, cls, css) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (css) e.style.cssText = css;
    return e;
  }

  function draw(results) {
    target.textContent = "";
    if (!results.length) {
      target.setAttribute("data-lookbook-state", "empty");
      return;
    }
    if (d.title) {
      var h = el("h3", "lookbook-title");
      h.textContent = d.title;
      target.appendChild(h);
    }
    var strip = el("div", "lookbook-strip", "display:flex;gap:12px;overflow-x:auto;padding:4px 0");
    results.forEach(function (r) {
      var href = safeUrl(r.link || "");
      var item = el(href ? "a" : "div", "lookbook-item", "flex:0 0 140px;color:inherit;text-decoration:none");
      if (href) item.href = href;
      item.setAttribute("data-product", String(r.id));
      var src = safeUrl(r.image || "") || base + "/v1/products/" + encodeURIComponent(String(r.id)) + "/photo";
      var img = el("img", "lookbook-photo", "width:140px;height:186px;object-fit:cover;display:block");
      img.src = src;
      img.alt = r.name || "";
      img.loading = "lazy";
      var name = el("div", "lookbook-name", "font-size:13px;margin-top:4px");
      name.textContent = r.name || "";
      item.appendChild(img);
      item.appendChild(name);
      if (typeof r.price === "number") {
        var price = el("div", "lookbook-price", "font-size:13px;font-weight:600");
        price.textContent = r.price.toFixed(2) + (r.currency ? " " + r.currency : "");
        item.appendChild(price);
      }
      strip.appendChild(item);
    });
    target.appendChild(strip);
    target.setAttribute("data-lookbook-state", "ready");
  }

  fetch(base + path + "?k=" + k, { headers: { Authorization: "Bearer " + (d.key || "") } })
    .then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body && body.error ? body.error : "HTTP " + r.status);
        return body;
      });
    })
    .then(function (body) {
      draw(body.results || []);
    })
    .catch(function (e) {
      target.setAttribute("data-lookbook-state", "error");
      console.warn("lookbook: " + e.message);
    });
})();
