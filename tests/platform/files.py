"""Real files of every supported type, made by the tests themselves."""

from __future__ import annotations

from pathlib import Path


def make_pdf(path: Path, pages: list[str]) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setTitle("Lecture notes")
    for text in pages:
        y = 800
        for line in text.split("\n"):
            pdf.drawString(72, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    return path


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Operating Manual", level=1)
    document.add_paragraph("This manual explains the pump.")
    document.add_heading("Installation", level=2)
    document.add_paragraph("Mount the pump on a level floor before connecting the hoses.")
    document.add_heading("Maintenance", level=2)
    document.add_paragraph("Replace the filter every 300 operating hours.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Part", "Interval"
    table.cell(1, 0).text, table.cell(1, 1).text = "Seal", "1200 hours"
    document.save(str(path))
    return path


NOISY_HTML = """<!doctype html><html><head><title>Kettle guide</title>
<style>body { color: red } .secret-style {}</style>
<script>var trackingScriptMarker = 1;</script></head>
<body>
<nav><a href="/">Home</a> <a href="/shop">NavigationMarkerShop</a></nav>
<header><div class="logo">HeaderBannerMarker</div></header>
<div class="sidebar">SidebarMarker links</div>
<main>
  <h1>Electric kettle</h1>
  <p>The kettle boils one litre of water in about three minutes.</p>
  <h2>Descaling</h2>
  <p>Descale monthly with diluted citric acid.</p>
  <ul><li>Unplug the kettle first.</li><li>Rinse twice.</li></ul>
</main>
<footer>FooterMarker copyright</footer>
<script>console.log("InlineScriptMarker")</script>
</body></html>"""
