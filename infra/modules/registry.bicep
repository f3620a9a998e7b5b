// Container registry the image is built in (ACR Tasks) and pulled from by the site's managed identity only.
@description('Resource name (derived in main.bicep from the environment)')
param name string
@description('Region of the resource')
param location string
@description('Tags for every resource (azd-env-name)')
param tags object
@description('Principal id of the app identity, granted AcrPull')
param identityPrincipalId string

@description('Registry SKU')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string = 'Basic'

var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

// 2025-04-01: the first stable version whose type has anonymousPullEnabled (ARM silently drops a property
// the API version lacks, and Bicep only warns).
resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' = {
  // checkov:skip=CKV_AZURE_139: ACR Tasks (az acr build) and App Service without VNet integration reach the registry publicly; pulls need the identity's AcrPull role
  // checkov:skip=CKV_AZURE_163: vulnerability scanning is Defender for Containers, a subscription-level paid plan, not a registry setting
  // checkov:skip=CKV_AZURE_166: quarantine needs a scanner to release images, which would stall every rollout
  // checkov:skip=CKV_AZURE_233: zone redundancy needs Premium; the default SKU is Basic to keep the lab cheap
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource pull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identityPrincipalId, acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPull)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output name string = registry.name
output id string = registry.id
output loginServer string = registry.properties.loginServer
