<%
    # The row's columns, timestamp first (Correlator's dataset convention).
    columns = sorted(payload, key=lambda column: column != "timestamp")
%>\
Dataset ${event.dataset or '(none)'}: one row (${event.type}, ${event.level})
% if event.summary:
${event.summary}
% endif

${text_table([(column, payload[column]) for column in columns])}

Event ${event.id} at ${event.time}, request ${event.request_key or '-'}

-- 
Sent by Correlator rule "${rule.name}".
