"""What runs wrote, read back for a person.

    report.py  which runs overfit, from when, and which settings go with it
    plots.py   PNG curves
    tables.py  aligned text tables
"""
