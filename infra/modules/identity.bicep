// One user-assigned identity shared by the production site and its staging slot, so a swap never changes
// who the app is to ACR, Key Vault and Voice Live.
@description('Resource name (derived in main.bicep from the environment)')
param name string
@description('Region of the resource')
param location string
@description('Tags for every resource (azd-env-name)')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
