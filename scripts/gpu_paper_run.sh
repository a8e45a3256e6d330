set -x
nvidia-smi --query-gpu=name,driver_version --format=csv
python -c "import torch, numpy, yaml, PIL; print(torch.__version__, torch.version.cuda)"
mkdir -p $OUT/run
printf 'preset: paper\nbuiltin_num_train: 16000\nbuiltin_num_test: 500\nnum_epochs: 30\nlog_every: 10\ncheckpoint_every: 200\nnum_workers: 4\nthreads: 8\n' > $OUT/cell.yaml
timeout -s TERM 400 python -m model.train --config $OUT/cell.yaml --out $OUT/run > $OUT/train.log 2>&1
echo "train exit $?"
tail -5 $OUT/train.log
python -m model.evaluate $OUT/run 2>&1 | tail -2
rm -rf $OUT/run/checkpoints $OUT/.data
du -sh $OUT
