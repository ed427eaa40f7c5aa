## One line: the action strips line breaks anyway (no header injection).
[${event.level}] ${event.summary or event.type}
