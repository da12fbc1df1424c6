import type { onRequestHookHandler } from 'fastify'
import { MisdirectedRequestError } from './errors.js'

// The live view's Host allow-list, against DNS rebinding: a page on evil.example whose name the attacker
// then points at 127.0.0.1 can read the view with the browser's blessing (same origin to it), but its
// requests still carry `Host: evil.example`. Loopback names and addresses always pass (a browser resolves
// `localhost` and `*.localhost` itself, RFC 6761 §6.3, so they cannot be rebound); other names only when
// configured. An IP literal other than loopback is a name like any other: configure it to use it.

/** `host` as the URL parser normalises it (lower case, IPv6 in brackets, IPv4 dotted), without the port; undefined if it is not a host. */
export function hostnameOf (host: string): string | undefined {
  if (host === '' || /[/?#@\\\s]/.test(host)) return undefined
  try {
    return new URL(`http://${host}`).hostname.replace(/\.$/, '')
  } catch {
    return undefined
  }
}

/** A host name or IP literal without a port: what GATEWAY_DASHBOARD_HOSTS and `allowedHosts` take. */
export function isHostName (value: string): boolean {
  const hostname = hostnameOf(value)
  return hostname !== undefined && hostname === hostnameOf(`${value}:1`)
}

/** localhost, *.localhost, 127.0.0.0/8 and ::1. */
export function isLoopback (hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

/** Refuses (421 FST_REG_GATEWAY_MISDIRECTED) a request whose Host is neither loopback nor one of `names`. */
export function allowedHosts (names: readonly string[]): onRequestHookHandler {
  const allowed = new Set(names.map((name) => hostnameOf(name)))
  return function allowedHost (request, _reply, done) {
    const hostname = hostnameOf(request.host)
    const ok = hostname !== undefined && (isLoopback(hostname) || allowed.has(hostname))
    done(ok ? undefined : new MisdirectedRequestError(request.host))
  }
}
