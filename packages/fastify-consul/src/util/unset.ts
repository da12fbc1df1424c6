/**
 * `T` with `| undefined` added to each optional property. Under `exactOptionalPropertyTypes` a consumer
 * can then write `port: maybePort` or `token: process.env.CONSUL_TOKEN`: undefined means "not set", as it
 * already does at run time (the schemas and the defaults treat a present undefined as absent).
 */
export type Unset<T> = { [K in keyof T]: {} extends Pick<T, K> ? T[K] | undefined : T[K] }
