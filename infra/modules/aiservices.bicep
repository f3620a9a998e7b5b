// Azure AI Services account that serves Voice Live, its model deployment [FR-16], the roles keyless access
// needs, and, only when key auth is chosen, the account key written straight into Key Vault.
@description('Resource name (derived in main.bicep from the environment)')
param name string
@description('Region of the resource')
param location string
@description('Tags for every resource (azd-env-name)')
param tags object
@description('Keep key auth on and store the key in Key Vault (default: Entra ID only)')
param useKeyAuth bool = false
@description('Deploy the model into the account')
param deployModel bool = true

@description('Restore a soft-deleted account of the same name (left by azd down without --purge)')
param restore bool = false
@description('Model to deploy (and deployment name)')
param modelName string = 'gpt-realtime'
@description('Version of the model')
param modelVersion string = '2025-08-28'
@description('Deployment SKU')
param modelSkuName string = 'GlobalStandard'
@description('Capacity in thousands of tokens per minute')
param modelCapacity int = 10
@description('Principal id of the app identity, granted Cognitive Services User and Azure AI User')
param identityPrincipalId string
@description('Deploying user or pipeline principal, granted the same roles (empty: none)')
param userPrincipalId string = ''
@description('Type of userPrincipalId')
param userPrincipalType string = 'User'
@description('Vault that receives the key when key auth is on')
param keyVaultName string
@description('Secret name for the key')
param keySecretName string = 'voice-live-api-key'

var cognitiveServicesUser = 'a97b65f3-24c7-4388-baec-2e87135dc908'
var azureAiUser = '53ca6127-db72-4b80-b1b0-d745d6d5456d'
var grants = [
  {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    role: cognitiveServicesUser
  }
  {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    role: azureAiUser
  }
  {
    principalId: userPrincipalId
    principalType: userPrincipalType
    role: cognitiveServicesUser
  }
  {
    principalId: userPrincipalId
    principalType: userPrincipalType
    role: azureAiUser
  }
]

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134: browsers reach the bridge, and the bridge (no VNet integration) reaches Voice Live over the public endpoint; access needs Entra ID roles
  // checkov:skip=CKV_AZURE_236: local auth is a parameter, disabled by default (useKeyAuth=false); tests/infra asserts disableLocalAuth is !useKeyAuth
  name: name
  location: location
  tags: tags
  kind: 'AIServices'
  sku: {
    name: 'S0'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    // The custom subdomain gives the account its own https://<name>.services.ai.azure.com/ endpoint, which
    // Entra ID token auth requires.
    customSubDomainName: name
    disableLocalAuth: !useKeyAuth
    restore: restore
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = if (deployModel) {
  parent: account
  name: modelName
  sku: {
    name: modelSkuName
    capacity: modelCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

resource roles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in grants: if (!empty(grant.principalId)) {
  name: guid(account.id, grant.principalId, grant.role)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: grant.principalType
  }
}]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// The key goes from the account to the vault inside the deployment: it is never a parameter or an output.
resource keySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (useKeyAuth) {
  // checkov:skip=CKV_AZURE_114: checkov reads a conditional resource's `if` wrapper, not its properties; contentType is set below (asserted in tests/infra)
  // checkov:skip=CKV_AZURE_41: the secret mirrors the account key; rotation is regenerating the key and re-provisioning, not an expiry date that would break the app
  parent: vault
  name: keySecretName
  properties: {
    contentType: 'text/plain'
    value: account.listKeys().key1
  }
}

output name string = account.name
output id string = account.id
output endpoint string = 'https://${account.properties.customSubDomainName}.services.ai.azure.com/'
