## One dataset row on one line per column, timestamp first.
<% columns = sorted(payload, key=lambda column: column != "timestamp") %>\
[${event.level}] ${event.dataset or 'dataset'}: ${event.summary or event.type}
% for column in columns:
${column}=${cell_text(payload[column])}
% endfor
