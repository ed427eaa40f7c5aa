## Plain text; fitted to the rule's max_segments (default 3) with an ellipsis when longer.
[${event.level}] ${event.summary or event.type}\
% if event.object:
 (${event.object})\
% endif
% if event.info:

${event.info}\
% endif
