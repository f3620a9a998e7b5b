// The "is it fast and healthy?" dashboard: an Application Insights workbook over the app's OpenTelemetry metrics.
// Its queries live in workbook.json so tests can check every metric name against the app's METRICS table.
@description('Title shown in the portal')
param displayName string
@description('Component the workbook queries')
param appInsightsId string
@description('Region of the resource')
param location string
@description('Tags for every resource (azd-env-name)')
param tags object

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's resource name must be a GUID; deriving it keeps re-provisioning idempotent.
  name: guid(resourceGroup().id, 'voicebridge-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: loadTextContent('workbook.json')
  }
}

output id string = workbook.id
