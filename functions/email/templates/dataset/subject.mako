## A dataset event carries one row of its dataset in the payload.
[${event.level}] ${event.dataset or 'dataset'}: ${event.summary or event.type}
