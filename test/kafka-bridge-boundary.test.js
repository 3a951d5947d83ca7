// The bridges' boundary without a broker: options from the environment, and failures before
// anything connects (a fatal JSON line, then the error), as `writeahead mirror|replay` report them.
import test from 'ava';
import { optionsFromEnv, parseFrom } from '../dist/connectors/kafka/index.js';

test('WRITEAHEAD_FROM: an offset or @<ms> that is not an exact integer is INVALID_OPTION naming the variable', (t) => {
  for (const v of ['99999999999999999999', '9007199254740993', '@99999999999999999999']) {
    const err = t.throws(() => optionsFromEnv({ WRITEAHEAD_FROM: v }), { code: 'INVALID_OPTION' }, v);
    t.is(err.details.option, 'WRITEAHEAD_FROM');
    t.is(parseFrom(v), null);
  }
  t.deepEqual(optionsFromEnv({ WRITEAHEAD_FROM: '9007199254740991' }), { from: 9007199254740991 });
  t.deepEqual(optionsFromEnv({ WRITEAHEAD_FROM: '@0' }), { from: { timestamp: 0 } });
});
