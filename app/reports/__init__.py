"""The monthly customer report: what a month (or any date range) looked like for one customer,
gathered from the runs, results, findings and audit rows the hub already keeps, and rendered
as a web page, a PDF, CSV files and JSON (see docs/reports.md)."""
