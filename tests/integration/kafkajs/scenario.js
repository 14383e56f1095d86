// KafkaJS against a broker. Prints one JSON document with everything observed.
//   node scenario.js BOOTSTRAP TOPIC produce   create a 3-partition topic, produce keyed messages
//                                              with headers (plain and gzip), list offsets
//   node scenario.js BOOTSTRAP TOPIC consume   consume everything from the beginning in a group
//   node scenario.js BOOTSTRAP TOPIC delete    delete the topic and list the topics left
//   node scenario.js BOOTSTRAP TOPIC groups N  two groups, then two members of one group, over N messages
//   node scenario.js BOOTSTRAP TOPIC transactions  a transactional producer commits one transaction
//                                              (with offsets of group G-txn) and aborts another
//   node scenario.js BOOTSTRAP TOPIC member G  one member of group G until SIGTERM: one JSON line per
//                                              assignment, message and commit (each message is committed)
'use strict'
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')

const [bootstrap, topic, mode] = process.argv.slice(2)
const deadline = setTimeout(() => { console.error('scenario timed out'); process.exit(3) }, 60000)

const kafka = new Kafka({ clientId: 'tomyum-kafkajs', brokers: [bootstrap], logLevel: logLevel.NOTHING,
  retry: { retries: 5, initialRetryTime: 100 } })
const b64 = (b) => (b === null || b === undefined ? null : Buffer.from(b).toString('base64'))

async function produce () {
  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })

  const producer = kafka.producer()
  await producer.connect()
  const sent = []
  const batches = [
    { compression: CompressionTypes.None, from: 0 },
    { compression: CompressionTypes.GZIP, from: 12 }
  ]
  for (const { compression, from } of batches) {
    const messages = []
    for (let i = from; i < from + 12; i++) {
      const m = { partition: i % 3, key: `key-${i % 4}`, value: Buffer.from([i, 0, 255, 10, 13]),
        headers: { h1: `v${i}`, bin: Buffer.from([0, 1, 2]) } }
      messages.push(m)
      sent.push({ partition: m.partition, key: b64(Buffer.from(m.key)), value: b64(m.value),
        headers: { h1: b64(Buffer.from(m.headers.h1)), bin: b64(m.headers.bin) } })
    }
    await producer.send({ topic, messages, acks: -1, compression })
  }
  await producer.disconnect()
  const latest = await admin.fetchTopicOffsets(topic)
  const earliestTs = await admin.fetchTopicOffsetsByTimestamp(topic, 0)
  const future = await admin.fetchTopicOffsetsByTimestamp(topic, Date.now() + 3600 * 1000)
  await admin.disconnect()
  return { created, sent, latest, earliestTs, future }
}

async function consume () {
  const expected = Number(process.argv[5])
  const consumer = kafka.consumer({ groupId: `${topic}-group`, maxWaitTimeInMs: 200 })
  const received = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await new Promise((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers = {}
        for (const [k, v] of Object.entries(message.headers)) headers[k] = b64(v)
        received.push({ partition, offset: Number(message.offset), key: b64(message.key),
          value: b64(message.value), headers, timestamp: Number(message.timestamp) })
        if (received.length === expected) resolve()
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  return { received }
}

async function remove () {
  const admin = kafka.admin()
  await admin.connect()
  await admin.deleteTopics({ topics: [topic] })
  const after = await admin.listTopics()
  await admin.disconnect()
  return { topicsAfterDelete: after }
}

// Runs consumers side by side until together they have seen `total` messages.
async function collect (members, total) {
  const seen = members.map(() => [])
  await Promise.all(members.map((m) => m.connect()))
  await Promise.all(members.map((m) => m.subscribe({ topic, fromBeginning: true })))
  await new Promise((resolve, reject) => {
    members.forEach((m, i) => m.run({
      eachMessage: async ({ partition, message }) => {
        seen[i].push({ partition, offset: Number(message.offset), value: b64(message.value) })
        if (seen.reduce((n, s) => n + s.length, 0) === total) resolve()
      }
    }).catch(reject))
  })
  await Promise.all(members.map((m) => m.disconnect()))
  return seen
}

async function groups () {
  const n = Number(process.argv[5])
  const separate = await collect([kafka.consumer({ groupId: `${topic}-a`, maxWaitTimeInMs: 100 }),
    kafka.consumer({ groupId: `${topic}-b`, maxWaitTimeInMs: 100 })], 2 * n)
  const shared = await collect([kafka.consumer({ groupId: `${topic}-shared`, maxWaitTimeInMs: 100 }),
    kafka.consumer({ groupId: `${topic}-shared`, maxWaitTimeInMs: 100 })], n)
  return { separate, shared }
}

// A long-lived member: reports as it goes (JSON lines), commits each message before the next.
async function member () {
  const line = (o) => process.stdout.write(JSON.stringify(o) + '\n')
  const consumer = kafka.consumer({ groupId: process.argv[5], maxWaitTimeInMs: 100, sessionTimeout: 6000,
    heartbeatInterval: 500, rebalanceTimeout: 10000 })
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    line({ event: 'assigned', partitions: payload.memberAssignment[topic] || [] })
  })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      line({ event: 'message', partition, offset: Number(message.offset), value: b64(message.value) })
      const next = (BigInt(message.offset) + 1n).toString()
      await consumer.commitOffsets([{ topic, partition, offset: next }])
      line({ event: 'committed', partition, offset: Number(next) })
    }
  })
  await new Promise((resolve) => process.once('SIGTERM', resolve))
  await consumer.disconnect()
  return { stopped: true }
}

async function transactions () {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })
  await admin.disconnect()
  const producer = kafka.producer({ transactionalId: `${topic}-tid`, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const committed = await producer.transaction()
  await committed.send({ topic, messages: [0, 1, 2].map((i) => ({ partition: i % 2, value: `committed-${i}` })) })
  await committed.sendOffsets({ consumerGroupId: `${topic}-txn`, topics: [{ topic, partitions: [{ partition: 0, offset: '2' }] }] })
  await committed.commit()
  const aborted = await producer.transaction()
  await aborted.send({ topic, messages: [0, 1].map((i) => ({ partition: i % 2, value: `aborted-${i}` })) })
  await aborted.abort()
  await producer.disconnect()
  const offsets = await (async () => {
    const a = kafka.admin()
    await a.connect()
    const o = await a.fetchOffsets({ groupId: `${topic}-txn`, topics: [topic] })
    await a.disconnect()
    return o
  })()
  return { committed: 3, aborted: 2, offsets }
}

const modes = { produce, consume, delete: remove, groups, member, transactions }
modes[mode]().then((result) => {
  clearTimeout(deadline)
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0)
}).catch((e) => {
  console.error(e && e.stack ? e.stack : e)
  process.exit(1)
})
