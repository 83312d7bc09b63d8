import { Type } from '@sinclair/typebox'

export const ExportQuerySchema = Type.Object(
  {
    format: Type.Optional(
      Type.Union([Type.Literal('json'), Type.Literal('fhir'), Type.Literal('omh'), Type.Literal('csv')], {
        default: 'json',
        description:
          '`json` (default): the NOWATCH document below; `fhir`: FHIR R4 Bundle; `omh`: Open mHealth data points; `csv`: a zip of CSV files.',
      }),
    ),
  },
  { additionalProperties: false },
)
