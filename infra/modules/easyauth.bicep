// Sign-in in front of the app, no code (issue 13): App Service Authentication ("Easy Auth") with Microsoft
// Entra ID on the production site and the staging slot. Written in both modes: with `enabled` false only
// `platform.enabled: false` is written, which turns authentication off again (`azd env set VOICEBRIDGE_AUTH
// none` undoes `entra`) without configuring a provider nobody uses.
// The app registration comes from the preprovision hook (az ad app); only its client id is needed here:
// the login uses the ID token (no client secret: nothing to rotate or leak), whose audience is the client
// id itself. The session lives in App Service's own cookie; the token store is off: nothing reads the
// provider's tokens (/.auth/me, /.auth/refresh are unused) and without blob storage it would keep them in
// the site's file system.
@description('Name of the web app whose production site and staging slot get sign-in')
param siteName string
@description('Name of the staging slot (the same settings go to both slots, so a swap never changes who may enter)')
param stagingSlotName string
@description('true: every request but /healthz needs a signed-in Microsoft Entra ID user; false: authentication off')
param enabled bool
@description('Application (client) id of the app registration users sign in to; empty when sign-in is off')
param clientId string
@description('Tenant whose users may sign in (the deployment tenant)')
param tenantId string

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource staging 'Microsoft.Web/sites/slots@2024-04-01' existing = {
  parent: site
  name: stagingSlotName
}

var issuer = '${environment().authentication.loginEndpoint}${tenantId}/v2.0'

var signInOn = {
  platform: {
    enabled: true
  }
  globalValidation: {
    requireAuthentication: true
    unauthenticatedClientAction: 'RedirectToLoginPage'
    redirectToProvider: 'azureactivedirectory'
    // The platform's health check and the swap's warm-up ping carry no sign-in.
    excludedPaths: [
      '/healthz'
    ]
  }
  identityProviders: {
    azureActiveDirectory: {
      enabled: true
      registration: {
        clientId: clientId
        openIdIssuer: issuer
      }
    }
  }
  login: {
    tokenStore: {
      enabled: false
    }
  }
  httpSettings: {
    requireHttps: true
  }
}

var signInOff = {
  platform: {
    enabled: false
  }
}

// The same settings on both: a swap never changes who may enter.
resource siteAuth 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_56: sign-in is the operator's choice (VOICEBRIDGE_AUTH): the properties are enabled ? signInOn : signInOff, which checkov cannot evaluate; off by default, said next to the deploy commands
  // checkov:skip=CKV_AZURE_13: authsettingsV2 is the authentication itself; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_63: authsettingsV2 holds only authentication settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_65: authsettingsV2 holds only authentication settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_66: authsettingsV2 holds only authentication settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_80: authsettingsV2 holds only authentication settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_88: authsettingsV2 holds only authentication settings; checkov mistakes every sites/config for the web config, which the site declares
  // checkov:skip=CKV_AZURE_222: authsettingsV2 holds only authentication settings; checkov mistakes every sites/config for the web config, which the site declares
  parent: site
  name: 'authsettingsV2'
  properties: enabled ? signInOn : signInOff
}

resource stagingAuth 'Microsoft.Web/sites/slots/config@2024-04-01' = {
  parent: staging
  name: 'authsettingsV2'
  properties: enabled ? signInOn : signInOff
}
