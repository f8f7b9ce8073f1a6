/* stats.c - latency percentiles and the broker's CPU time and memory. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "err.h"

int lat__init(struct lat *l, size_t cap)
{
	l->n = 0;
	l->cap = cap ? cap : 1;
	l->v = malloc(l->cap * sizeof(*l->v));
	return l->v ? MQC_OK : MQC_ERR_NOMEM;
}

void lat__add(struct lat *l, int64_t ns)
{
	if(l->n < l->cap){
		l->v[l->n++] = ns;
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

double lat__pct_us(struct lat *l, double p)
{
	size_t k;

	if(l->n == 0){
		return 0.0;
	}
	qsort(l->v, l->n, sizeof(*l->v), cmp_i64);
	k = (size_t)((p / 100.0) * (double)(l->n - 1) + 0.5);
	if(k >= l->n){
		k = l->n - 1;
	}
	return (double)l->v[k] / 1000.0;
}

void lat__cleanup(struct lat *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* /proc/<pid>/task/<tid>/<name> opened for reading, or NULL. */
static FILE *open_task_file(int pid, const char *tid, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/proc/%d/task/%.32s/%s", pid, tid, name);
	return fopen(path, "r");
}

/* Time on CPU of every thread of pid and of its child processes (the
 * plugin's loader is one), from /proc/<pid>/task/<tid>/schedstat, in
 * nanoseconds: stat's clock ticks (10 ms) are too coarse for short runs.
 * Negative if pid has no task list. */
static double schedstat_s(int pid, int depth)
{
	char path[128];
	unsigned long long ns, sum = 0;
	struct dirent *d;
	DIR *dir;
	FILE *f;
	int n = 0, child;
	double c;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if(dir == NULL){
		return -1.0;
	}
	while((d = readdir(dir)) != NULL){
		if(d->d_name[0] == '.'){
			continue;
		}
		f = open_task_file(pid, d->d_name, "schedstat");
		if(f == NULL){
			continue;
		}
		if(fscanf(f, "%llu", &ns) == 1){
			sum += ns;
			n++;
		}
		fclose(f);
		if(depth <= 0 || (f = open_task_file(pid, d->d_name, "children")) == NULL){
			continue;
		}
		while(fscanf(f, "%d", &child) == 1){
			if((c = schedstat_s(child, depth - 1)) > 0){
				sum += (unsigned long long)(c * 1e9);
			}
		}
		fclose(f);
	}
	closedir(dir);
	return n > 0 ? (double)sum / 1e9 : -1.0;
}

double proc__cpu_s(int pid)
{
	char path[64], buf[2048], *p;
	unsigned long utime, stime;
	FILE *f;
	size_t n;

	double s;

	if(pid <= 0){
		return -1.0;
	}
	if((s = schedstat_s(pid, 1)) >= 0){
		return s;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if(f == NULL){
		return -1.0;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces: fields count from its closing ')'. */
	p = strrchr(buf, ')');
	if(p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				&utime, &stime) != 2){
		return -1.0;
	}
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}
