## The row as a one-row table, columns across; every cell is escaped by the default filter.
<%
    columns = sorted(payload, key=lambda column: column != "timestamp")
    cell = "padding:4px 10px;border:1px solid #d0d7de;text-align:left;white-space:nowrap"
%>\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${event.dataset or 'dataset'}: ${event.summary or event.type}</title></head>
<body style="margin:0;padding:20px;background:#f6f8fa;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2328">
<div style="border-left:6px solid ${level_colour};background:#ffffff;padding:12px 16px">
  <div style="font-size:12px;font-weight:700;color:${level_colour}">${event.level} &middot; ${event.type}</div>
  <div style="font-size:18px;font-weight:600;margin-top:4px">Dataset ${event.dataset or '(none)'}</div>
% if event.summary:
  <p style="margin:8px 0 0">${event.summary}</p>
% endif
</div>
<table style="border-collapse:collapse;font-size:14px;margin-top:16px;background:#ffffff">
  <tr>
% for column in columns:
    <th style="${cell};background:#f6f8fa">${column}</th>
% endfor
  </tr>
  <tr>
% for column in columns:
    <td style="${cell}">${cell_text(payload[column])}</td>
% endfor
  </tr>
</table>
<p style="font-size:12px;color:#656d76">Event ${event.id} at ${event.time}, request ${event.request_key or '-'}.
Sent by Correlator rule &ldquo;${rule.name}&rdquo;.</p>
</body>
</html>
