"""Report stage: one Jinja2 template renders the run's self-contained HTML and, via WeasyPrint,
its PDF (``reports.render``). ``data`` loads a run directory, ``summaries`` turns upstream JSON
into tables, ``narrative`` writes the sentences from the numbers, ``figures`` draws one figure
per function in the ``style`` of the report. (The fake run the report's tests render is
``tests/fixtures/report_run.py``.)"""
