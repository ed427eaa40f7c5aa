% if group:
${group['count']} events from ${group['first']} to ${group['last']} (rule "${rule.name}"):

% for member in group['events']:
- ${member.get('time', '')} [${member.get('level', '')}] ${member.get('type', '')} ${member.get('object') or ''} ${member.get('summary') or member.get('info') or ''}
% endfor
% if group['truncated']:
... and ${group['count'] - len(group['events'])} more
% endif

-- 
Sent by Correlator rule "${rule.name}" (a digest of its delivery policy).
<% return %>
% endif
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
