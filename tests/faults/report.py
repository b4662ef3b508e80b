"""A run's timeline as one SVG: a row per client process, a bar per
operation (green ok, grey fail, orange open-ended info), faults as shaded
bands with their names, and the operations of a violation outlined red."""
import html

COLOURS = {"ok": "#3a3", "fail": "#999", "info": "#e80"}
FAULT_COLOURS = {"partition": "#fcc", "loss": "#ffd", "pause": "#cdf", "kill": "#ecf", "quiet": "#dfd"}


def timeline(history, path, highlight=(), width=1400):
    ops = history.ops
    end = max([o["ret"] or o["call"] for o in ops] + [f["end"] or f["start"] for f in history.faults] + [1.0])
    processes = sorted({o["process"] for o in ops})
    row = {p: i for i, p in enumerate(processes)}
    row_h, top, left = 6, 40, 60
    height = top + row_h * max(1, len(processes)) + 20
    scale = (width - left - 10) / end
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="10">', f'<rect width="{width}" height="{height}" fill="white"/>']
    for f in history.faults:
        x0 = left + f["start"] * scale
        x1 = left + (f["end"] if f["end"] is not None else end) * scale
        colour = next((c for k, c in FAULT_COLOURS.items() if f["kind"].startswith(k)), "#eee")
        label = html.escape(f"{f['kind']} {f['detail']}")
        out.append(f'<rect x="{x0:.1f}" y="{top - 4}" width="{max(1.0, x1 - x0):.1f}" height="{height - top}" '
                   f'fill="{colour}"><title>{label}</title></rect>')
        out.append(f'<text x="{x0:.1f}" y="{top - 8}" transform="rotate(-20 {x0:.1f} {top - 8})">'
                   f'{html.escape(f["kind"])}</text>')
    marked = set(highlight)
    for o in ops:
        x0 = left + o["call"] * scale
        x1 = left + (o["ret"] if o["ret"] is not None else end) * scale
        y = top + row[o["process"]] * row_h
        colour = COLOURS.get(o["status"], "#000")
        stroke = ' stroke="red" stroke-width="1.5"' if o["id"] in marked else ""
        label = html.escape(f"{o['id']} p{o['process']} {o['f']} {o['key']} {o['args']} -> {o['status']} "
                            f"{o['result']} {o.get('error', '')}")
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(1.0, x1 - x0):.1f}" height="{row_h - 1}" '
                   f'fill="{colour}"{stroke}><title>{label}</title></rect>')
    for t in range(0, int(end) + 1, max(1, int(end) // 20)):
        x = left + t * scale
        out.append(f'<text x="{x:.1f}" y="{height - 5}">{t}s</text>')
    out.append(f'<text x="2" y="{top + 8}">clients</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))
