export { COLOUR, type NotifyEvent, type NotifyEventKind } from './events.js';
export { Notifier, type Alert, type Delivery, type NotifierOptions, type Provider } from './notifier.js';
export {
  discordMessage,
  genericMessage,
  requestFor,
  signBody,
  slackMessage,
  teamsMessage,
  type ProviderType,
} from './providers.js';
