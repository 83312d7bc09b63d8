import { type Static, Type } from '@sinclair/typebox'
import { DateTimeSchema, PaginationQuerySchema, UuidSchema } from '../common.ts'

/** Schemas shared by the firmware (app) and admin-firmware routes. */

export const HardwareModelSchema = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
  description: 'Hardware model identifier, e.g. `NW-2`.',
})

export const VersionSchema = Type.String({
  minLength: 5,
  maxLength: 128,
  pattern: '^\\d',
  description:
    'A semantic version (https://semver.org), e.g. `1.10.0` or `2.0.0-beta.1`, without a leading `v`. Versions compare by semver precedence: 1.10.0 > 1.9.0 > 1.9.0-rc.1; build metadata (`+…`) is kept but does not count.',
})

export const ChannelSchema = Type.Union([Type.Literal('stable'), Type.Literal('beta')], {
  description:
    'Release channel. The beta channel is offered beta and stable releases; the stable channel only stable ones.',
})

export const StatusSchema = Type.Union(
  [
    Type.Literal('draft'),
    Type.Literal('published'),
    Type.Literal('halted'),
    Type.Literal('deprecated'),
    Type.Literal('rolled_back'),
  ],
  {
    description:
      '`draft` (uploaded, offered to nobody, downloadable by admins only) → `published` (offered to its rollout cohort) → `deprecated` (no longer offered, still downloadable). A published release becomes `halted` (offered to nobody new) by an admin or by itself when too many installs fail; `resume` publishes it again, `rollback` makes it `rolled_back`: devices running it are offered the previous release.',
  },
)

export const ReleaseNotesSchema = Type.String({
  maxLength: 20000,
  description: 'Release notes (plain text or Markdown).',
})

const NullableDateTime = Type.Union([DateTimeSchema, Type.Null()])

/** What the app sees of a release. */
export const ReleaseSchema = Type.Object(
  {
    id: UuidSchema,
    hardware_model: Type.String(),
    version: Type.String(),
    channel: ChannelSchema,
    size: Type.Integer({ description: 'Size of the image in bytes.' }),
    sha256: Type.String({ description: 'SHA-256 of the image, lowercase hex.' }),
    release_notes: Type.String(),
    min_version: Type.Union([Type.String(), Type.Null()], {
      description: 'The lowest installed version this release can be installed over; null: any.',
    }),
    mandatory: Type.Boolean(),
    published_at: NullableDateTime,
    download_path: Type.String({ description: 'Path of the download route, relative to the server root.' }),
  },
  { additionalProperties: false },
)

export const UpdateSchema = Type.Object(
  {
    ...ReleaseSchema.properties,
    mandatory: Type.Boolean({
      description: 'True when this release or any published release skipped on the way to it is mandatory.',
    }),
    rollback: Type.Boolean({
      description: 'True when the installed version was rolled back and this older release replaces it.',
    }),
  },
  { additionalProperties: false },
)

export const ReportCountsSchema = Type.Object(
  {
    total: Type.Integer({ description: 'Devices that reported an outcome (a device counts once, its latest report).' }),
    success: Type.Integer(),
    failure: Type.Integer(),
    reporting_users: Type.Integer(),
    failing_users: Type.Integer(),
  },
  { additionalProperties: false },
)

/** What an admin sees of a release. */
export const AdminReleaseSchema = Type.Object(
  {
    ...ReleaseSchema.properties,
    status: StatusSchema,
    rollout_percentage: Type.Integer({ minimum: 0, maximum: 100 }),
    uploaded_by: Type.Union([UuidSchema, Type.Null()]),
    rollback_target_id: Type.Union([UuidSchema, Type.Null()]),
    halted_at: NullableDateTime,
    halt_reason: Type.Union([Type.String(), Type.Null()]),
    install_reports: ReportCountsSchema,
    created_at: DateTimeSchema,
    updated_at: DateTimeSchema,
  },
  { additionalProperties: false },
)

export const LatestQuerySchema = Type.Object(
  {
    hardware: HardwareModelSchema,
    current_version: VersionSchema,
    channel: Type.Optional({ ...ChannelSchema, default: 'stable' }),
  },
  { additionalProperties: false },
)

export const PublishedListQuerySchema = Type.Object(
  {
    hardware: HardwareModelSchema,
    channel: Type.Optional(ChannelSchema),
    ...PaginationQuerySchema.properties,
  },
  { additionalProperties: false },
)

export const ReportBodySchema = Type.Object(
  {
    device_id: Type.String({ minLength: 1, maxLength: 128, description: 'The watch the image was installed on.' }),
    outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
    reason: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 1000 }), Type.Null()], {
        description: 'Why the install failed (required with `failure`).',
      }),
    ),
    from_version: Type.Optional(Type.Union([VersionSchema, Type.Null()])),
  },
  { additionalProperties: false },
)

export const ReportSchema = Type.Object(
  {
    id: UuidSchema,
    release_id: UuidSchema,
    device_id: Type.String(),
    outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
    reason: Type.Union([Type.String(), Type.Null()]),
    from_version: Type.Union([Type.String(), Type.Null()]),
    created_at: DateTimeSchema,
    updated_at: DateTimeSchema,
  },
  { additionalProperties: false },
)

export const UploadQuerySchema = Type.Object(
  {
    hardware_model: HardwareModelSchema,
    version: VersionSchema,
    channel: Type.Optional({ ...ChannelSchema, default: 'stable' }),
    release_notes: Type.Optional(
      Type.String({ maxLength: 2000, default: '', description: 'Up to 2,000 characters here; longer notes by PATCH.' }),
    ),
    min_version: Type.Optional(VersionSchema),
    mandatory: Type.Optional(Type.Boolean({ default: false })),
    rollout_percentage: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 100 })),
  },
  { additionalProperties: false },
)

export const AdminListQuerySchema = Type.Object(
  {
    hardware: Type.Optional(HardwareModelSchema),
    status: Type.Optional(StatusSchema),
    channel: Type.Optional(ChannelSchema),
    ...PaginationQuerySchema.properties,
  },
  { additionalProperties: false },
)

export const PatchBodySchema = Type.Object(
  {
    release_notes: Type.Optional(ReleaseNotesSchema),
    min_version: Type.Optional(Type.Union([VersionSchema, Type.Null()])),
    mandatory: Type.Optional(Type.Boolean()),
    channel: Type.Optional(ChannelSchema),
  },
  { additionalProperties: false, minProperties: 1 },
)

export const RolloutBodySchema = Type.Object(
  {
    rollout_percentage: Type.Integer({
      minimum: 0,
      maximum: 100,
      description:
        'Share of users offered the release. Each user has a fixed bucket 0–99 per release (a hash of user and release), so raising the percentage only adds users.',
    }),
  },
  { additionalProperties: false },
)

export type PatchBody = Static<typeof PatchBodySchema>
export type UploadQuery = Static<typeof UploadQuerySchema>
