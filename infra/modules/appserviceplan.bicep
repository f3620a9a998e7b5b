// Linux App Service plan (Standard or above: slots and autoscale) with CPU/memory autoscale, so a busy app
// scales out across instances; each WebSocket session stays on the instance that accepted it.
@description('Resource name (derived in main.bicep from the environment)')
param name string
@description('Region of the resource')
param location string
@description('Tags for every resource (azd-env-name)')
param tags object
@description('Plan SKU (Standard or above: slots and autoscale)')
param skuName string = 'P0v3'

@description('Autoscale ceiling')
@minValue(1)
@maxValue(10)
param maxInstances int = 3

@description('Instances the plan runs now: a re-provision passes the live count so it never undoes what autoscale chose')
@minValue(1)
@maxValue(30)
param instanceCount int = 1

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy needs three instances minimum, tripling the default cost
  name: name
  location: location
  tags: tags
  kind: 'linux'
  sku: {
    name: skuName
    capacity: min(instanceCount, maxInstances)
  }
  properties: {
    reserved: true
  }
}

resource autoscale 'Microsoft.Insights/autoscalesettings@2022-10-01' = {
  name: '${name}-autoscale'
  location: location
  tags: tags
  properties: {
    enabled: true
    targetResourceUri: plan.id
    profiles: [
      {
        name: 'cpu-and-memory'
        capacity: {
          minimum: '1'
          maximum: string(maxInstances)
          default: '1'
        }
        rules: [
          {
            metricTrigger: {
              metricName: 'CpuPercentage'
              metricResourceUri: plan.id
              timeGrain: 'PT1M'
              statistic: 'Average'
              timeWindow: 'PT5M'
              timeAggregation: 'Average'
              operator: 'GreaterThan'
              threshold: 70
            }
            scaleAction: {
              direction: 'Increase'
              type: 'ChangeCount'
              value: '1'
              cooldown: 'PT5M'
            }
          }
          {
            metricTrigger: {
              metricName: 'MemoryPercentage'
              metricResourceUri: plan.id
              timeGrain: 'PT1M'
              statistic: 'Average'
              timeWindow: 'PT5M'
              timeAggregation: 'Average'
              operator: 'GreaterThan'
              threshold: 80
            }
            scaleAction: {
              direction: 'Increase'
              type: 'ChangeCount'
              value: '1'
              cooldown: 'PT5M'
            }
          }
          {
            // Scale-in is slow on purpose: it ends sessions on the removed instance (they drain and reconnect).
            metricTrigger: {
              metricName: 'CpuPercentage'
              metricResourceUri: plan.id
              timeGrain: 'PT1M'
              statistic: 'Average'
              timeWindow: 'PT15M'
              timeAggregation: 'Average'
              operator: 'LessThan'
              threshold: 30
            }
            scaleAction: {
              direction: 'Decrease'
              type: 'ChangeCount'
              value: '1'
              cooldown: 'PT15M'
            }
          }
        ]
      }
    ]
  }
}

output id string = plan.id
output name string = plan.name
