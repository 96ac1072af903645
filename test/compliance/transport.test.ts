// The transport compliance suite against the TCP transport on loopback.

import { startNetwork } from '../node/transport/helpers.ts';
import { runTransportCompliance } from './transport.ts';

runTransportCompliance('tcp transport', startNetwork);
