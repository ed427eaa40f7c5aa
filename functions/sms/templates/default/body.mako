## Plain text; fitted to the rule's max_segments (default 3) with an ellipsis when longer.
% if group:
## A digest (delivery policy): the count, the group, and the first events.
[${group['count']} events${' ' + ', '.join(group['labels'].values()) if group['labels'] else ''}] \
${'; '.join((m.get('summary') or m.get('type') or '') + (' (' + m['object'] + ')' if m.get('object') else '') for m in group['events'][:5])}\
% if group['count'] > 5:
 ...\
% endif
% else:
[${event.level}] ${event.summary or event.type}\
% if event.object:
 (${event.object})\
% endif
% if event.info:

${event.info}\
% endif
% endif
