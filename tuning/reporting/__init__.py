"""What runs wrote, read back for a person.

    report.py  which runs overfit, from when, and which settings go with it
    render.py  the report as text, report.json, report.html and its plot
    plots.py   PNG curves
    tables.py  aligned text tables
"""
