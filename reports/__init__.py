"""Reports people read: the firm's score report, each bank's nightly batch with its index, the
portfolio monitoring report and the regulator's audit pack. HTML from Jinja2 templates with inline
SVG charts (no script, nothing fetched), PDF through headless Chromium."""
