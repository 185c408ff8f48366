import { Type, type Static } from 'typebox';

/** The one error body every route of every service answers with. */
export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String(),
    error: Type.String(),
    message: Type.String(),
  },
  { description: 'Error' },
);
export type ErrorResponse = Static<typeof ErrorResponse>;
