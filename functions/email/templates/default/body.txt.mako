${event.level}: ${event.summary or event.type}
% if event.description:

${event.description}
% endif

Event
-----
${text_table(fields)}
% if payload:

Payload
-------
${text_table(payload)}
% endif

-- 
Sent by Correlator rule "${rule.name}".
