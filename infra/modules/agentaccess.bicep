// Agent mode (docs/agent.md) with the agent in a Foundry resource this template does not deploy: the app
// identity gets the roles Voice Live and the agent service check on that resource (Azure AI User reaches
// every project under the account). For an agent in the account aiservices.bicep deploys, those roles
// are already granted there, and this module is not used.
@description('Name of the existing Foundry resource (AI Services account) whose project holds the agent')
param accountName string
@description('Principal id of the app identity, granted Cognitive Services User and Azure AI User on it')
param identityPrincipalId string

var cognitiveServicesUser = 'a97b65f3-24c7-4388-baec-2e87135dc908'
var azureAiUser = '53ca6127-db72-4b80-b1b0-d745d6d5456d'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: accountName
}

resource roles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [cognitiveServicesUser, azureAiUser]: {
  name: guid(account.id, identityPrincipalId, role)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

output endpoint string = 'https://${account.properties.customSubDomainName}.services.ai.azure.com/'
