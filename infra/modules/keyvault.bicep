// Key Vault for the Voice Live key (only used when key auth is chosen): RBAC only, soft delete and purge
// protection on, audit logs to Log Analytics.
@description('Resource name (derived in main.bicep from the environment)')
param name string
@description('Region of the resource')
param location string
@description('Tags for every resource (azd-env-name)')
param tags object

@description('Public endpoint: Enabled unless private networking is added')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Principal id of the app identity, granted Key Vault Secrets User')
param identityPrincipalId string
@description('Deploying user or pipeline principal, granted Key Vault Secrets Officer (empty: none)')
param userPrincipalId string = ''
@description('Type of userPrincipalId')
param userPrincipalType string = 'User'
@description('Workspace that receives the audit logs')
param logAnalyticsWorkspaceId string

@description('recover: bring back the soft-deleted vault of the same name (purge protection keeps it after azd down --purge)')
@allowed([
  'default'
  'recover'
])
param createMode string = 'default'

@description('Days a deleted vault is kept (and its name taken)')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

var secretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var secretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var grants = [
  {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    role: secretsUser
  }
  {
    principalId: userPrincipalId
    principalType: userPrincipalType
    role: secretsOfficer
  }
]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the site has no VNet integration, so it reaches the vault over its public endpoint; access is RBAC-only
  // checkov:skip=CKV_AZURE_189: public network access is a parameter (keyVaultPublicNetworkAccess), Enabled by default for the same reason
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    createMode: createMode
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }
}

resource roles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in grants: if (!empty(grant.principalId)) {
  name: guid(vault.id, grant.principalId, grant.role)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: grant.principalType
  }
}]

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
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

output name string = vault.name
output id string = vault.id
output endpoint string = vault.properties.vaultUri
