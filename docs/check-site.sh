#!/usr/bin/env bash
# Checks the built site (docs/target/site) the way a reader meets it:
#  1. every local link and image of every page points at a file that exists, and every #anchor at an id on its page;
#     every SVG parses as XML;
#  2. every page renders in headless Chromium (Debian's package "chromium"): the browser loads it, runs it and dumps
#     a DOM with the page's content (a report of `llmc report`: its status "report of a finished run" and no script
#     error or file that failed to load); without chromium this part is skipped with one line;
#  3. with SCREENSHOTS=DIR, screenshots of the index, a tutorial, the CLI reference and the example report go to
#     DIR/site-*.png.
# Usage: docs/check-site.sh [SITE_DIR]      (Maven runs it in docs' verify phase)
set -euo pipefail
site="$(cd "${1:-$(dirname "$0")/target/site}" && pwd)"
python3 - "$site" <<'PY'
import html.parser, os, sys, urllib.parse, xml.dom.minidom
site = sys.argv[1]
pages = [os.path.join(d, f) for d, _, fs in os.walk(site) for f in fs if f.endswith(".html")]
class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.ids = set(); self.refs = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a: self.ids.add(a["id"])
        if tag == "a" and "name" in a: self.ids.add(a["name"])
        for key in ("href", "src"):
            if key in a and a[key] is not None and not (tag == "link" and key == "href" and "stylesheet" not in a.get("rel", "")):
                self.refs.append((tag, a[key]))
parsed = {}
for p in pages:
    page = Page(); page.feed(open(p, encoding="utf-8").read()); parsed[p] = page
problems, checked = [], 0
for p, page in parsed.items():
    for tag, ref in page.refs:
        url = urllib.parse.urlparse(ref)
        if url.scheme in ("http", "https", "mailto", "data", "javascript") or ref.startswith("//"):
            continue
        target = os.path.normpath(os.path.join(os.path.dirname(p), urllib.parse.unquote(url.path))) if url.path else p
        checked += 1
        if not os.path.isfile(target):
            problems.append(f"{os.path.relpath(p, site)}: <{tag}> {ref}: no file {os.path.relpath(target, site)}")
        elif url.fragment and target.endswith(".html"):
            ids = parsed[target].ids if target in parsed else set()
            if url.fragment not in ids:
                problems.append(f"{os.path.relpath(p, site)}: <{tag}> {ref}: no id '{url.fragment}' there")
svgs = [os.path.join(d, f) for d, _, fs in os.walk(site) for f in fs if f.endswith(".svg")]
for svg in svgs:
    try: xml.dom.minidom.parse(svg)
    except Exception as e: problems.append(f"{os.path.relpath(svg, site)}: not well-formed SVG: {e}")
for line in problems: print("BROKEN " + line)
print(f"[site] {len(pages)} pages, {checked} local links and images, {len(svgs)} SVG files: {len(problems)} broken")
sys.exit(1 if problems else 0)
PY
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
    echo "[site] chromium not installed (Debian: apt-get install chromium): pages not rendered in a browser"
    exit 0
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --disable-sync --no-first-run --user-data-dir="$profile")
rendered=0
while IFS= read -r page; do
    if grep -q '<script src="state.js">' "$page"; then
        # a report of `llmc report` (quickstart-report/): its script draws the charts from state.js with Chart.js and
        # then writes every script error and file that failed to load into data-errors; the status says it loaded
        dom="$(timeout 60 "$browser" "${flags[@]}" --virtual-time-budget=10000 --dump-dom "file://$page" \
            2>/dev/null || true)"
        if [[ "$dom" != *'data-errors="[]"'* ]] || [[ "$dom" != *'report of a finished run'* ]]; then
            errors="$(grep -o 'data-errors="[^"]*"' <<< "$dom" || echo 'no data-errors: it did not finish loading')"
            echo "BROKEN ${page#$site/}: the report did not render in Chromium ($errors)"; exit 1
        fi
    else
        dom="$(timeout 60 "$browser" "${flags[@]}" --dump-dom "file://$page" 2>/dev/null || true)"
        # the DOM after loading and running the page: Asciidoctor's header and content blocks, and the page's end
        if [[ "$dom" != *'id="header"'* ]] || [[ "$dom" != *'id="content"'* ]] || [[ "$dom" != *'</html>'* ]]; then
            echo "BROKEN ${page#$site/}: Chromium did not render it (no header or content in its DOM)"; exit 1
        fi
    fi
    rendered=$((rendered + 1))
done < <(find "$site" -name '*.html' | sort)
echo "[site] $rendered pages rendered by $("$browser" --version 2>/dev/null | head -1)"
if [ -n "${SCREENSHOTS:-}" ]; then
    mkdir -p "$SCREENSHOTS"
    for shot in index:index.html tutorial:tutorials/14-flash-attention.html cli:cli.html \
        report:quickstart-report/index.html; do
        [ -f "$site/${shot#*:}" ] || continue
        timeout 60 "$browser" "${flags[@]}" --hide-scrollbars --window-size=1280,1600 --virtual-time-budget=10000 \
            --screenshot="$SCREENSHOTS/site-${shot%%:*}.png" "file://$site/${shot#*:}" >/dev/null 2>&1
        echo "[site] screenshot $SCREENSHOTS/site-${shot%%:*}.png"
    done
fi
