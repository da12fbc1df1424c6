// Intentions as an operator writes them (`consul intention create -deny` is this POST; `delete` the DELETE).

export async function createIntention (agentUrl: string, source: string, destination: string, action: 'allow' | 'deny'): Promise<string> {
  const res = await fetch(`${agentUrl}/v1/connect/intentions`, { method: 'POST', body: JSON.stringify({ SourceName: source, DestinationName: destination, Action: action }) })
  /* c8 ignore next -- a -dev agent takes any intention; if it does not, the run fails, loudly */
  if (!res.ok) throw new Error(`create intention ${source} → ${destination}: ${res.status} ${await res.text()}`)
  return (await res.json() as { ID: string }).ID
}

export async function deleteIntention (agentUrl: string, id: string): Promise<void> {
  const res = await fetch(`${agentUrl}/v1/connect/intentions/${id}`, { method: 'DELETE' })
  /* c8 ignore next -- the intention was just created; if it cannot be deleted, the run fails, loudly */
  if (!res.ok) throw new Error(`delete intention ${id}: ${res.status} ${await res.text()}`)
}
