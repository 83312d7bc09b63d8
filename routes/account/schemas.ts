import { Type } from '@sinclair/typebox'
import { DateTimeSchema, UuidSchema } from '../common.ts'

export const DeleteAccountBodySchema = Type.Object(
  { password: Type.String({ minLength: 1, maxLength: 1024, description: 'The current password.' }) },
  { additionalProperties: false },
)

export const ExportDocumentSchema = Type.Object(
  {
    format: Type.Literal('nowatch-export'),
    version: Type.Literal(1),
    exported_at: DateTimeSchema,
    user_id: UuidSchema,
    sections: Type.Object(
      {
        profile: Type.Array(Type.Object({}, { additionalProperties: true }), {
          description: 'One row: every profile field, role, consent times, disabled_at (never the password hash).',
        }),
        settings: Type.Array(Type.Object({ key: Type.String(), value: Type.Unknown(), updated: DateTimeSchema }), {
          description: 'The settings the user has set (keys at their default have no row).',
        }),
        sessions: Type.Array(Type.Object({}, { additionalProperties: true }), {
          description: 'Every session, ended ones included: client, IP, user agent, times, why it ended.',
        }),
        auth_history: Type.Array(Type.Object({}, { additionalProperties: true }), {
          description: 'Every login attempt on the account.',
        }),
      },
      {
        additionalProperties: Type.Array(Type.Object({}, { additionalProperties: true })),
        description:
          'One array per data domain, in a fixed order; each row is a plain snake_case object as the domain stores it. Domains add their own sections (measurements, journal, sharing …).',
      },
    ),
  },
  {
    additionalProperties: false,
    description:
      'Every record of the account, streamed: the document is written while it is read from the database, so its size is not bounded by memory. A download that does not end with the closing `}}` was cut short and must be retried.',
  },
)
