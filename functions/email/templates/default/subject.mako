## One line: the action strips line breaks anyway (no header injection).
% if group:
[digest] ${group['count']} events${' (' + ', '.join(group['labels'].values()) + ')' if group['labels'] else ''} from rule ${rule.name}
% else:
[${event.level}] ${event.summary or event.type}
% endif
