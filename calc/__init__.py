"""npl-xl in LibreOffice Calc (import name ``npl_xl_calc``): the second live front end.

The same worksheet functions as the xlwings layer (``npl_xl_udfs``) and the same NPL
buttons, as a LibreOffice extension generated from the registry and the ribbon: nothing
here computes. See docs/LIBREOFFICE.md.

- :mod:`npl_xl_calc.spec`: the add-in's interface (UNOIDL), wizard texts, menu and toolbar;
- :mod:`npl_xl_calc.oxt`: builds ``npl_xl_calc.oxt``;
- ``extension/npl_calc.py``: the component soffice loads (its own Python; no npl-xl);
- :mod:`npl_xl_calc.worker`: the process of this interpreter that computes for it;
- :mod:`npl_xl_calc.wire`: the pipe between the two;
- :mod:`npl_xl_calc.book`: the macros' book over the open document;
- :mod:`npl_xl_calc.office`: finding soffice, a headless soffice, the extension manager;
- :mod:`npl_xl_calc.install`: ``npl-xl install --libreoffice``.
"""
