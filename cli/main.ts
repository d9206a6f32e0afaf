/**
 * The `lfaas` command.
 */
import { Command } from 'commander';

const program = new Command();
program.name('lfaas').description('Lattice FaaS: a stateful FaaS on a lattice key-value store').version('0.1.0');

program
  .command('up')
  .description('start a local cluster on 127.0.0.1 (today: the foundation demo; the KVS arrives with issue 3)')
  .option('--demo', 'run the demo once the cluster is up')
  .action(async () => {
    console.log('lfaas up: the KVS tier has not landed yet; nothing to start.');
  });

await program.parseAsync(process.argv);
