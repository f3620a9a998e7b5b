// Log Analytics workspace and the workspace-based Application Insights component the app exports to.
@description('Log Analytics workspace name')
param logAnalyticsName string
@description('Application Insights component name')
param appInsightsName string
@description('Region of the resource')
param location string
@description('Tags for every resource (azd-env-name)')
param tags object

@description('Days Log Analytics keeps data; 30 is the free retention')
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    // Ingestion still uses the connection string's instrumentation key: OpenTelemetry's exporter has no Entra
    // mode wired through the app, so local auth stays on (it only allows writing telemetry, not reading).
    DisableLocalAuth: false
    IngestionMode: 'LogAnalytics'
  }
}

output logAnalyticsWorkspaceId string = workspace.id
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
