// voicebridge on Azure: one resource group holding monitoring, Key Vault, a registry, an Azure AI Services
// account for Voice Live, one managed identity and a Linux container web app with a staging slot.
// Written in the Bicep subset pycep-parser reads, so checkov scans every resource (see docs/deploy.md).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds every resource name')
param environmentName string

@minLength(1)
@description('Region for every resource; it must offer the Voice Live model (see docs/deploy.md)')
param location string

@description('Object id of the deploying user or pipeline principal; gets the roles local keyless development needs')
param principalId string = ''

@description('Type of principalId: User for a person, ServicePrincipal for a pipeline')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Model the bridge asks Voice Live for')
param voiceLiveModel string = 'gpt-realtime'

@description('Version of the model deployed')
param modelVersion string = '2025-08-28'

@description('Deployment SKU of the model')
@allowed([
  'GlobalStandard'
  'Standard'
  'DataZoneStandard'
])
param modelSkuName string = 'GlobalStandard'

// Strings, not int/bool: azd substitutes main.parameters.json as text, so every value arrives quoted.
@description('Model deployment capacity in thousands of tokens per minute')
param modelCapacity string = '10'

@description('Deploy the model into the account (Voice Live also serves gpt-realtime fully managed without one)')
@allowed([
  'true'
  'false'
])
param deployModel string = 'true'

@description('Voice the agent speaks with (Azure neural voice or an OpenAI voice name)')
param voiceLiveVoice string = 'en-US-AvaNeural'

@description('Turn detection: semantic VAD (default for deployments) cuts a person off less when they pause mid-sentence')
@allowed([
  'server_vad'
  'azure_semantic_vad'
  'azure_semantic_vad_multilingual'
])
param voiceLiveTurnDetection string = 'azure_semantic_vad'

@description('End-of-utterance detection model (only with a semantic turn detection); empty: off')
@allowed([
  ''
  'semantic_detection_v1'
])
param voiceLiveEndOfUtterance string = ''

@description('Input noise reduction; empty: off')
@allowed([
  ''
  'azure_deep_noise_suppression'
  'near_field'
  'far_field'
])
param voiceLiveNoiseReduction string = 'azure_deep_noise_suppression'

@description('true: server echo cancellation (people on laptop speakers without a headset)')
@allowed([
  'true'
  'false'
])
param voiceLiveEchoCancellation string = 'false'

@description('Model temperature, 0.0 to 1.0 (the realtime models 0.6 to 1.0); empty: the service default')
param voiceLiveTemperature string = ''

@description('Comma-separated Python modules whose @tool functions the agent may call, e.g. voicebridge.tools.clock; empty: none')
param voicebridgeTools string = ''

@description('Agent mode (docs/agent.md): name of the Foundry agent that answers instead of a model; empty: model mode')
param voiceLiveAgentName string = ''

@description('Agent mode: the Foundry project that holds the agent')
param voiceLiveAgentProject string = ''

@description('Agent mode: the agent version; empty: its latest')
param voiceLiveAgentVersion string = ''

@description('Agent mode: an existing Foundry resource holding the agent project, when it is not the account this template deploys; empty: this one')
param voiceLiveAgentAccount string = ''

@description('Resource group of voiceLiveAgentAccount; empty: the one this template deploys into')
param voiceLiveAgentResourceGroup string = ''

@description('MCP tool servers (docs/mcp.md): the VOICEBRIDGE_MCP_SERVERS JSON list; header values are names of secrets in the vault this template deploys')
param voicebridgeMcpServers string = ''
@description('App settings the operator tunes from the azd environment: main.parameters.json maps each name (VOICE_LIVE_INSTRUCTIONS, VOICEBRIDGE_MAX_SESSIONS, ...) to `azd env set NAME value`; empty means the app\'s own default. docs/deploy.md "Make it yours" lists them')
param appTuning object = {}

@description('true: keep key auth on the AI account and put the key in Key Vault; false (default): Entra ID only')
@allowed([
  'true'
  'false'
])
param useKeyAuth string = 'false'

@allowed([
  'Enabled'
  'Disabled'
])
@description('The app reaches Key Vault over its public endpoint unless the site is VNet-integrated')
param keyVaultPublicNetworkAccess string = 'Enabled'

@allowed([
  'S1'
  'S2'
  'S3'
  'P0v3'
  'P1v3'
  'P2v3'
  'P3v3'
])
@description('Plan SKU; Standard or above, which gives deployment slots and autoscale')
param appServiceSkuName string = 'P0v3'

@description('Autoscale ceiling (instances)')
param maxInstances string = '3'

@description('Instances the plan runs now; the preprovision hook reads it from the live plan so a re-provision keeps what autoscale chose')
param instanceCount string = '1'

@description('Image production runs; empty on first provision (placeholder), then the live one, read by the preprovision hook')
param webImageName string = ''

@description('Image the staging slot runs (the swap-back image after a release); read from the live slot like webImageName')
param webStagingImageName string = ''

@description('recover when a soft-deleted vault of this environment exists (the preprovision hook decides)')
@allowed([
  'default'
  'recover'
])
param keyVaultCreateMode string = 'default'

@description('true when a soft-deleted AI Services account of this environment exists (the preprovision hook decides)')
@allowed([
  'true'
  'false'
])
param aiServicesRestore string = 'false'

@description('Sign-in in front of the app: none (anyone who reaches the URL) or entra (App Service Authentication with Microsoft Entra ID on both slots)')
@allowed([
  'none'
  'entra'
])
param auth string = 'none'

@description('Application (client) id of the app registration users sign in to; the preprovision hook creates or reuses it when auth is entra')
param authClientId string = ''

@description('Key Vault secret that holds the Voice Live key when key auth is chosen')
param voiceLiveKeySecretName string = 'voice-live-api-key'

@description('Extra regions, comma-separated without spaces, each getting one more AI Services account (its own Voice Live quota) with the same model and roles; the app spreads sessions over every account (issue 23). Empty: one account in location')
param voiceLiveLocations string = ''

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var keyAuth = bool(useKeyAuth)
var extraVoiceLiveLocations = empty(voiceLiveLocations) ? [] : split(voiceLiveLocations, ',')
var signIn = auth == 'entra'
var placeholderImage = 'mcr.microsoft.com/appsvc/staticsite:latest'
var productionImage = empty(webImageName) ? placeholderImage : webImageName

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    displayName: 'voicebridge (${environmentName})'
    appInsightsId: monitoring.outputs.appInsightsId
    location: location
    tags: tags
  }
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    publicNetworkAccess: keyVaultPublicNetworkAccess
    createMode: keyVaultCreateMode
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    name: '${abbrs.containerRegistryRegistries}${resourceToken}'
    location: location
    tags: tags
    identityPrincipalId: identity.outputs.principalId
  }
}

module aiServices 'modules/aiservices.bicep' = {
  name: 'aiservices'
  scope: rg
  params: {
    name: '${abbrs.cognitiveServicesAccounts}${resourceToken}'
    location: location
    tags: tags
    useKeyAuth: keyAuth
    deployModel: bool(deployModel)
    restore: bool(aiServicesRestore)
    modelName: voiceLiveModel
    modelVersion: modelVersion
    modelSkuName: modelSkuName
    modelCapacity: int(modelCapacity)
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    keyVaultName: keyVault.outputs.name
    keySecretName: voiceLiveKeySecretName
  }
}

var agentMode = !empty(voiceLiveAgentName)
// The app reads the vault for the Voice Live key (key auth) and for MCP servers' header values.
var appReadsVault = keyAuth || !empty(voicebridgeMcpServers)
var agentElsewhere = agentMode && !empty(voiceLiveAgentAccount)

module agentAccess 'modules/agentaccess.bicep' = if (agentElsewhere) {
  name: 'agentaccess'
  scope: resourceGroup(empty(voiceLiveAgentResourceGroup) ? rg.name : voiceLiveAgentResourceGroup)
  params: {
    accountName: voiceLiveAgentAccount
    identityPrincipalId: identity.outputs.principalId
  }
}

// One more account per extra region: the same module, so the same model, roles and (with key auth) a key
// in the vault, as <voiceLiveKeySecretName>-2, -3… (the names src/voicebridge/credentials.py reads).
module aiServicesExtra 'modules/aiservices.bicep' = [for (region, i) in extraVoiceLiveLocations: {
  name: 'aiservices-${i + 2}'
  scope: rg
  params: {
    name: '${abbrs.cognitiveServicesAccounts}${resourceToken}-${i + 2}'
    location: region
    tags: tags
    useKeyAuth: keyAuth
    deployModel: bool(deployModel)
    restore: bool(aiServicesRestore)
    modelName: voiceLiveModel
    modelVersion: modelVersion
    modelSkuName: modelSkuName
    modelCapacity: int(modelCapacity)
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    keyVaultName: keyVault.outputs.name
    keySecretName: '${voiceLiveKeySecretName}-${i + 2}'
  }
}]

// Every account's endpoint, the primary first: AZURE_VOICE_LIVE_ENDPOINT takes them comma-separated. The
// extra ones are spelled out (the account name is their subdomain) as a variable loop takes only values
// known when the deployment starts.
var extraVoiceLiveEndpoints = [for (region, i) in extraVoiceLiveLocations: 'https://${abbrs.cognitiveServicesAccounts}${resourceToken}-${i + 2}.services.ai.azure.com/']
var voiceLiveEndpoints = join(concat([aiServices.outputs.endpoint], extraVoiceLiveEndpoints), ',')

module plan 'modules/appserviceplan.bicep' = {
  name: 'appserviceplan'
  scope: rg
  params: {
    name: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    skuName: appServiceSkuName
    maxInstances: int(maxInstances)
    instanceCount: int(instanceCount)
  }
}

module web 'modules/webapp.bicep' = {
  name: 'webapp'
  scope: rg
  params: {
    name: '${abbrs.webSitesAppService}${resourceToken}'
    location: location
    tags: tags
    planId: plan.outputs.id
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    image: productionImage
    stagingImage: empty(webStagingImageName) ? productionImage : webStagingImageName
    appInsightsName: monitoring.outputs.appInsightsName
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    tuning: appTuning
    appSettings: {
      AZURE_VOICE_LIVE_ENDPOINT: agentElsewhere ? agentAccess.outputs.endpoint : voiceLiveEndpoints
      // An agent brings its own model: the app refuses VOICE_LIVE_MODEL in agent mode.
      VOICE_LIVE_MODEL: agentMode ? '' : voiceLiveModel
      VOICE_LIVE_AGENT_NAME: voiceLiveAgentName
      VOICE_LIVE_AGENT_PROJECT: voiceLiveAgentProject
      VOICE_LIVE_AGENT_VERSION: voiceLiveAgentVersion
      VOICEBRIDGE_MCP_SERVERS: voicebridgeMcpServers
      VOICE_LIVE_VOICE: voiceLiveVoice
      VOICE_LIVE_TURN_DETECTION: voiceLiveTurnDetection
      VOICE_LIVE_END_OF_UTTERANCE: voiceLiveEndOfUtterance
      VOICE_LIVE_NOISE_REDUCTION: voiceLiveNoiseReduction
      VOICE_LIVE_ECHO_CANCELLATION: voiceLiveEchoCancellation
      VOICE_LIVE_TEMPERATURE: voiceLiveTemperature
      VOICEBRIDGE_TOOLS: voicebridgeTools
      AZURE_CLIENT_ID: identity.outputs.clientId
      // Also for MCP servers, whose header values are secrets in the vault (read with Key Vault Secrets User).
      AZURE_KEY_VAULT_ENDPOINT: appReadsVault ? keyVault.outputs.endpoint : ''
      VOICE_LIVE_KEY_SECRET_NAME: voiceLiveKeySecretName
      WEBSITES_PORT: '8000'
      OTEL_SERVICE_NAME: 'voicebridge'
      // App Service's front end sets X-Forwarded-For (and Easy Auth the principal headers, stripping any a
      // client sent): the app may key its per-user limits on them (src/voicebridge/identity.py).
      VOICEBRIDGE_TRUST_FORWARDED: 'true'
      VOICEBRIDGE_TRUST_EASY_AUTH: signIn ? 'true' : 'false'
    }
  }
}

module easyAuth 'modules/easyauth.bicep' = {
  name: 'easyauth'
  scope: rg
  params: {
    siteName: web.outputs.name
    stagingSlotName: web.outputs.stagingSlotName
    enabled: signIn
    clientId: signIn ? authClientId : ''
    tenantId: tenant().tenantId
  }
}

// Read by azd (.azure/<env>/.env), azdeploy.sh and the deploy workflow. Never a key or a connection string.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.endpoint
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_VOICE_LIVE_ENDPOINT string = voiceLiveEndpoints
output AZURE_AI_SERVICES_NAME string = aiServices.outputs.name
output VOICE_LIVE_MODEL string = voiceLiveModel
output VOICE_LIVE_AUTH string = keyAuth ? 'key' : 'keyless'
// Not AZURE_CLIENT_ID: azd hands its outputs to hooks as environment variables, where that name would
// make Azure SDK credentials act as the pipeline's service principal.
output AZURE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output SERVICE_WEB_NAME string = web.outputs.name
output SERVICE_WEB_URI string = web.outputs.uri
output SERVICE_WEB_STAGING_URI string = web.outputs.stagingUri
output SERVICE_WEB_SLOT_NAME string = web.outputs.stagingSlotName
