/* Sorts sort_data (signed words, initialised data) in place with a recursive quicksort, then checks it.
 *
 * main returns 0 when the array ends up in non-decreasing order, else 1 + the index of the first element that
 * is greater than its successor. The host compares the array left in memory with its own sort of the image.
 */
#include <stdint.h>

int32_t sort_data[] = {
    17, -3, 1024, 0, 99, -2147483647 - 1, 5, 5, 42, -77, 2147483647, 8, 300, -1, 12, 3,
    65536, -65536, 7, 7, 7, 1000000, -999, 31, 64, 2, 19, -19, 123456789, -5, 0, 88,
};

#define COUNT (sizeof sort_data / sizeof sort_data[0])

static void swap(int32_t *a, int32_t *b)
{
    int32_t t = *a;
    *a = *b;
    *b = t;
}

/* Lomuto partition around the last element; recursion exercises calls and the stack. */
static void quicksort(int32_t *v, int lo, int hi)
{
    if (lo >= hi)
        return;
    int32_t pivot = v[hi];
    int store = lo;
    for (int i = lo; i < hi; i++)
        if (v[i] < pivot)
            swap(&v[i], &v[store++]);
    swap(&v[store], &v[hi]);
    quicksort(v, lo, store - 1);
    quicksort(v, store + 1, hi);
}

int main(void)
{
    quicksort(sort_data, 0, (int)COUNT - 1);
    for (unsigned i = 0; i + 1 < COUNT; i++)
        if (sort_data[i] > sort_data[i + 1])
            return (int)i + 1;
    return 0;
}
