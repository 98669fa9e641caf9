// Random ids for API objects (msg_…, chatcmpl-…, call_…, resp_…): hex from a random UUID.

/** `chars` random hex digits (at most 32) */
export const randomHex = (chars = 32): string => crypto.randomUUID().replaceAll("-", "").slice(0, chars);
