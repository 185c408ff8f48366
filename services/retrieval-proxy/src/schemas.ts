import { Type } from 'typebox';

// What crosses the wire to other services is declared once, in @aicache/contracts.
export { Metadata } from '@aicache/contracts';

export const DOCUMENT_ID_PATTERN = '^[A-Za-z0-9._-]{1,128}$';

export const DocumentId = Type.String({ pattern: DOCUMENT_ID_PATTERN, minLength: 1, maxLength: 128, description: 'Slug [A-Za-z0-9._-]{1,128}' });
