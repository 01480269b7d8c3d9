#!/usr/bin/env node
// Protect one post through the Unlearnable sidecar and write the result.
//   node protect-post.js --address 127.0.0.1:5051 --api-key KEY --user alice --post p1 \
//        --image photo.jpg --caption "at the beach" --out protected.jpg
// In a cluster give the headless Service, dns:///unlearnable-sidecar-headless.unlearnable:5051: calls are balanced per
// call over every replica (round_robin), and UNAVAILABLE or RESOURCE_EXHAUSTED is retried on the next one (a repeated
// post_id is answered with the stored result, never protected twice).
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

function parseArgs(argv) {
  const args = { address: '127.0.0.1:5051', apiKey: process.env.UNLEARNABLE_API_KEY || '', caption: '', timeout: 120 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    args[key] = argv[i + 1];
  }
  for (const required of ['user', 'post', 'image', 'out']) {
    if (!args[required]) throw new Error(`--${required} is required`);
  }
  return args;
}

const SERVICE_CONFIG = {
  loadBalancingConfig: [{ round_robin: {} }],
  methodConfig: [{
    name: [{ service: 'unlearnable.v1.ProtectionService' }],
    retryPolicy: {
      maxAttempts: 4, initialBackoff: '0.2s', maxBackoff: '3s', backoffMultiplier: 2,
      retryableStatusCodes: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'],
    },
  }],
};

function main() {
  const args = parseArgs(process.argv.slice(2));
  const protos = path.join(__dirname, '..', '..', 'protos');
  const definition = protoLoader.loadSync(path.join(protos, 'unlearnable', 'v1', 'protection.proto'),
    { includeDirs: [protos], keepCase: false, longs: Number, enums: String, defaults: true });
  const { unlearnable } = grpc.loadPackageDefinition(definition);
  const limit = 64 * 1024 * 1024;
  const client = new unlearnable.v1.ProtectionService(args.address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': limit, 'grpc.max_send_message_length': limit,
    'grpc.service_config': JSON.stringify(SERVICE_CONFIG), 'grpc.enable_retries': 1,
    'grpc.per_rpc_retry_buffer_size': 48 * 1024 * 1024, 'grpc.retry_buffer_size': 256 * 1024 * 1024,   // photos are kept to be sent again
  });
  const metadata = new grpc.Metadata();
  if (args.apiKey) metadata.set('x-api-key', args.apiKey);
  const request = { userId: args.user, postId: args.post, image: fs.readFileSync(args.image), caption: args.caption };
  const deadline = new Date(Date.now() + Number(args.timeout) * 1000);
  client.protect(request, metadata, { deadline }, (error, response) => {
    client.close();
    if (error) {
      console.error(`${grpc.status[error.code]}: ${error.details}`);
      process.exitCode = 1;
      return;
    }
    fs.writeFileSync(args.out, response.image);
    console.log(JSON.stringify({
      post_id: response.postId, protected_caption: response.protectedCaption, trigger: response.trigger,
      linf: response.quality.linf, psnr_db: response.quality.psnrDb, out: args.out,
    }));
  });
}

try { main(); } catch (e) { console.error(e.message); process.exitCode = 2; }
