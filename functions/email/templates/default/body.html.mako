## Every ${...} is HTML-escaped (default filter "h"); html_table() returns markup with escaped cells.
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${event.summary or event.type}</title>
</head>
<body style="margin:0;padding:0;background:#f6f8fa;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2328">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f6f8fa">
<tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="640" cellpadding="0" cellspacing="0" style="max-width:640px;background:#ffffff;border:1px solid #d0d7de;border-radius:6px">
  <tr>
    <td style="background:${level_colour};color:#ffffff;padding:14px 20px;border-radius:6px 6px 0 0">
      <span style="font-size:12px;font-weight:700;letter-spacing:.08em">${event.level}</span>
      <div style="font-size:18px;font-weight:600;margin-top:4px">${event.summary or event.type}</div>
    </td>
  </tr>
  <tr>
    <td style="padding:16px 20px">
% if group:
      <h3 style="margin:0 0 8px;font-size:15px">${group['count']} events from ${group['first']} to ${group['last']}</h3>
      <ul style="margin:0 0 16px;padding-left:20px">
% for member in group['events']:
        <li>${member.get('time', '')} [${member.get('level', '')}] ${member.get('type', '')} ${member.get('object') or ''} ${member.get('summary') or member.get('info') or ''}</li>
% endfor
      </ul>
% if group['truncated']:
      <p style="margin:0 0 16px">&hellip; and ${group['count'] - len(group['events'])} more.</p>
% endif
% else:
% if event.description:
      <p style="margin:0 0 16px;white-space:pre-wrap">${event.description}</p>
% endif
      <h3 style="margin:0 0 8px;font-size:15px">Event</h3>
      ${html_table(fields)}
% if payload:
      <h3 style="margin:20px 0 8px;font-size:15px">Payload</h3>
      ${html_table(payload)}
% endif
% endif
    </td>
  </tr>
  <tr>
    <td style="padding:12px 20px;border-top:1px solid #d0d7de;font-size:12px;color:#656d76">
      Sent by Correlator rule &ldquo;${rule.name}&rdquo;.
    </td>
  </tr>
</table>
</td></tr>
</table>
</body>
</html>
