// The Linux container web app and its staging slot. Rollouts go image -> staging -> health gate -> swap, so
// both run the same hardened config; each slot is told which one it is through a sticky setting.
@description('Resource name (derived in main.bicep from the environment)')
param name string
@description('Region of the resource')
param location string
@description('Tags for every resource (azd-env-name)')
param tags object
@description('App Service plan the site and slot run on')
param planId string
@description('Resource id of the user-assigned identity both slots use')
param identityId string
@description('Client id of that identity (ACR pulls)')
param identityClientId string

@description('Image production runs, without the DOCKER| prefix: the live one on a re-provision')
param image string

@description('Image the staging slot runs (after a swap: the previous release, kept for swapping back)')
param stagingImage string

@description('Application Insights component whose connection string the app gets')
param appInsightsName string
@description('Workspace that receives the site logs')
param logAnalyticsWorkspaceId string

@description('App settings shared by production and staging (name -> value)')
param appSettings object

@description('App settings the operator tunes (name -> value, empty: the app default); appSettings wins on a clash')
param tuning object = {}

@description('Slot a release goes to first')
param stagingSlotName string = 'staging'

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Swapped with the image: a release carries its configuration, and the warm-up ping makes the swap wait for
// /healthz on the new instances before production traffic moves. One object written as the `appsettings`
// config of each slot below: the connection string is known only at deploy time, and Bicep rejects a
// `for` loop over such a value (BCP178), so the settings are never turned into a name/value list here.
var sharedSettings = union(tuning, appSettings, {
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  WEBSITES_ENABLE_APP_SERVICE_STORAGE: 'false'
  WEBSITE_SWAP_WARMUP_PING_PATH: '/healthz'
  WEBSITE_SWAP_WARMUP_PING_STATUSES: '200'
})
// Sticky (see slotConfigNames below): telemetry from a staging smoke test stays labelled staging after a swap.
var slotSetting = 'OTEL_RESOURCE_ATTRIBUTES'
var identities = {
  '${identityId}': {}
}

// siteConfig is spelled out on the site and on the slot rather than shared through a variable, because
// checkov reads literal values only; tests/infra asserts the two stay identical.
resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: browsers do not present client certificates
  // checkov:skip=CKV_AZURE_222: the app serves browsers on the internet
  // checkov:skip=CKV_AZURE_212: one instance by default keeps the lab cheap; the plan's autoscale adds instances under load
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'web'
  })
  kind: 'app,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: identities
  }
  properties: {
    serverFarmId: planId
    httpsOnly: true
    // Sessions live in the instance's memory and a reconnecting tab starts a new one, so any healthy
    // instance will do; affinity would pin tabs to an instance that is draining.
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      linuxFxVersion: 'DOCKER|${image}'
      acrUseManagedIdentityCreds: true
      acrUserManagedIdentityID: identityClientId
      webSocketsEnabled: true
      alwaysOn: true
      http20Enabled: true
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      remoteDebuggingEnabled: false
      healthCheckPath: '/healthz'
      httpLoggingEnabled: true
      detailedErrorLoggingEnabled: true
      requestTracingEnabled: true
    }
  }
}

resource staging 'Microsoft.Web/sites/slots@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the staging slot must be reachable by the health gate and smoke test
  // checkov:skip=CKV_AZURE_212: staging shares the plan's instances; it serves only the health gate
  parent: site
  name: stagingSlotName
  location: location
  tags: tags
  kind: 'app,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: identities
  }
  properties: {
    serverFarmId: planId
    httpsOnly: true
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      linuxFxVersion: 'DOCKER|${stagingImage}'
      acrUseManagedIdentityCreds: true
      acrUserManagedIdentityID: identityClientId
      webSocketsEnabled: true
      alwaysOn: true
      http20Enabled: true
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      remoteDebuggingEnabled: false
      healthCheckPath: '/healthz'
      httpLoggingEnabled: true
      detailedErrorLoggingEnabled: true
      requestTracingEnabled: true
    }
  }
}

resource siteSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: appsettings holds only app settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_63: appsettings holds only app settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_65: appsettings holds only app settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_66: appsettings holds only app settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_80: appsettings holds only app settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_88: appsettings holds only app settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_222: appsettings holds only app settings; checkov mistakes every sites/config for the web config, which the site declares
  parent: site
  name: 'appsettings'
  properties: union(sharedSettings, {
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=production'
  })
}

resource stagingSettings 'Microsoft.Web/sites/slots/config@2024-04-01' = {
  parent: staging
  name: 'appsettings'
  properties: union(sharedSettings, {
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=staging'
  })
}

resource stickySettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: slotConfigNames only lists sticky setting names; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_63: slotConfigNames only lists sticky setting names; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_65: slotConfigNames only lists sticky setting names; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_66: slotConfigNames only lists sticky setting names; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_80: slotConfigNames only lists sticky setting names; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_88: slotConfigNames only lists sticky setting names; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_222: slotConfigNames only lists sticky setting names; checkov mistakes every sites/config for the web config, which the site declares
  parent: site
  name: 'slotConfigNames'
  properties: {
    appSettingNames: [
      slotSetting
    ]
  }
}

// Basic (username/password) publishing off for FTP and SCM on both slots: deployments use Entra ID.
resource sitePublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = [for policy in [
  'ftp'
  'scm'
]: {
  parent: site
  name: policy
  properties: {
    allow: false
  }
}]

resource slotPublishing 'Microsoft.Web/sites/slots/basicPublishingCredentialsPolicies@2024-04-01' = [for policy in [
  'ftp'
  'scm'
]: {
  parent: staging
  name: policy
  properties: {
    allow: false
  }
}]

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: site
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    // A category group, not a list of categories: App Service rejects a category the site's kind does not
    // emit, and allLogs follows whatever categories the service adds (AVM does the same).
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output name string = site.name
output uri string = 'https://${site.properties.defaultHostName}'
output stagingUri string = 'https://${staging.properties.defaultHostName}'
output stagingSlotName string = stagingSlotName
